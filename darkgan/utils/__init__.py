"""Small helpers shared by every stage: atomic writes, checksums, seeding, devices."""
