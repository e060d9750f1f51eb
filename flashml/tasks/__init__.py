"""Task models: pre- and post-processing around the tensors for images and text (issue 6)."""
