"""fleetsim's engine: OCPP-J, station logic, transport, clock, fleet, metrics, embedded CSMS."""
