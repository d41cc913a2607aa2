import dagster as dg

# One partition per integration; the key is the integration's name (``[a-z][a-z0-9-]*``).
integrations = dg.DynamicPartitionsDefinition(name="integrations")
PARTITIONS_NAME = "integrations"
