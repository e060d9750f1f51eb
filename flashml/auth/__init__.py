"""Who is calling: passwords for people, API keys for programs."""
