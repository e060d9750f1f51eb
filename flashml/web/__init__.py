"""What the JSON API and the console share about HTTP: path parameter types."""
