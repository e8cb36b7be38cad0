"""A scripted, OpenAI-compatible stand-in for a real model, so tests and the demo never need an API key or the
Internet. Stdlib only below the management command; nothing here imports the rest of the project."""
