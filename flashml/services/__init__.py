"""Logic shared by the JSON API, the console and the CLI. HTTP handlers stay thin and call these."""
