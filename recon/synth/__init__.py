"""recon.synth"""
