"""Stand-ins of outside services, shared by tests, fault suites and benchmarks.

``twilio_messages``: a fake of Twilio's Messages API for behaviour (unique SIDs, faults,
signed status callbacks). ``prism``: Stoplight Prism serving Twilio's own OpenAPI
document, for request shapes.
"""
