"""recon.materials"""
