class ConfigError(Exception):
    """A configuration value is missing or wrong. The message names the file, the key and the value."""

    def __init__(self, source: str, key: str, value: object, problem: str):
        super().__init__(f"{source}: {key}={value!r}: {problem}")
        self.source, self.key, self.value, self.problem = source, key, value, problem
