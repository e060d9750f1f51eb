"""Model registry: upload validation, bundles, manifests."""
