"""Core types, configuration, errors, logging and progress shared by every layer."""
