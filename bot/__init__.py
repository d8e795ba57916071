"""The conversation core: contacts, consent, sessions, the flow engine and channels."""
