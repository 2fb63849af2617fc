"""Platform-neutral building blocks of chat adapters: token cache, request limits, error classes.

Not an adapter: every adapter under ``bot.platforms`` may import it; it imports none of them.
"""
