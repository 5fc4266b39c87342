"""The primitive set: one block per primitive, holding every rule it has."""
