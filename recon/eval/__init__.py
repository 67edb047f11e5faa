"""recon.eval"""
