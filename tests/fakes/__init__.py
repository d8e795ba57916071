"""Stand-ins of outside services, shared by tests, fault suites and benchmarks.

``twilio_messages`` and ``twilio_calls``: fakes of Twilio's Messages and Calls APIs for
behaviour (unique SIDs, faults, signed status callbacks; calls played through our voice
webhooks), both built on ``twilio_rest`` and ``twilio_http``. ``prism``: Stoplight
Prism serving Twilio's own OpenAPI document, for request shapes.
"""
