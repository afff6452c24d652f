"""Polling: who is due, how fast each provider may be asked, and one tick of asking."""
