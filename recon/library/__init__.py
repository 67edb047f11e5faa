"""recon.library"""
