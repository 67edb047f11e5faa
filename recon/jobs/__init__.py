"""recon.jobs"""
