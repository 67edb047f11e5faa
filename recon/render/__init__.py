"""recon.render"""
