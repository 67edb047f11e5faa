"""Subject models: which fields, priors and losses fit a capture (object so far)."""
