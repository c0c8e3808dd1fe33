"""fleetsim's engine: OCPP-J, station logic, transport, clock, fleet, metrics, embedded CSMS.

The command line (`cli/`) reaches it through `api` alone, so the engine's modules can change
shape without the command line noticing.
"""
