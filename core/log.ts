import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

/**
 * Paths pino blanks in every record. Credentials travel under these names only, so one list
 * keeps tokens out of the logs whatever the component.
 */
export const REDACT_PATHS = [
  'password',
  'appPassword',
  'accessJwt',
  'refreshJwt',
  'accessToken',
  'refreshToken',
  'token',
  'credentials',
  'authorization',
  'headers.authorization',
  '*.password',
  '*.appPassword',
  '*.accessJwt',
  '*.refreshJwt',
  '*.accessToken',
  '*.refreshToken',
  '*.token',
  '*.credentials',
  '*.authorization',
];

export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { app: 'reelay' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination(2),
  );
}
