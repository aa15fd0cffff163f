"""The acknowledger: claims CodePipeline jobs (polls, EventBridge events, direct events) and hands them off."""
