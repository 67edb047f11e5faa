"""recon.models"""
