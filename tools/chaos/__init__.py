"""`make chaos`: the life-cycle fault run. Both functions' real handlers, each execution environment a process
killed at random points; Lambda's asynchronous retries and failure destination, and SQS's event source with its
visibility timeout and redrive, simulated around them; duplicate and redelivered events, ambiguous sends and
throttling injected. Every job is then judged by what CodePipeline, the queues and the runs recorded."""
