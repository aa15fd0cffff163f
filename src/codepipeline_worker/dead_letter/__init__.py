"""The dead-letter handler: fails back to CodePipeline each job whose message the work queue set aside."""
