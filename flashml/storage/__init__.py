"""Where model files live."""
