"""The service's entry point: settings (`settings`, read from the environment in one place),
the command line (`cli`) and the worker process (`worker`)."""
