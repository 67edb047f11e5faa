"""recon.bake"""
