"""What both functions share: models, the hand-off message, configuration, observability, the SDK adapter."""
