"""recon.fit"""
