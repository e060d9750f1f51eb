"""The KServe V2 / Open Inference Protocol wire format: request parsing and response encoding."""
