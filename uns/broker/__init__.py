"""The embedded MQTT broker: amqtt started from broker.yaml, with auth, ACLs and limits."""
