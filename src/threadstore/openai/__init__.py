"""The OpenAI Assistants API family: assistants, threads, messages, runs and run steps."""
