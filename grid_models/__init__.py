"""Grid models: frequency, DER events and site capacity that stations and EVs respond to.

Empty for now: stations see an unconstrained grid at nominal frequency, and the power an EV
draws is limited only by the EV and its EVSE.
"""
