"""What the bot does: one module per capability, each with its router (listed in ``catalogue``)."""
