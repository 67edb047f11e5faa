"""recon.fields"""
