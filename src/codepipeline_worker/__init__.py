"""A CodePipeline custom-action and partner-action job worker for AWS Lambda."""
