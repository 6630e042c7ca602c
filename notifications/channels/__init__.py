"""Notice channels, one module each, behind one contract (:mod:`notifications.channels.base`)."""
