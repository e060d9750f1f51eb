"""The request path: V2 inference through aliases, the task endpoints, shadow traffic and canary guards."""
