/** A bad setting: the CLI prints its message on one line and exits with code 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}
