// Reading a whole file for the nn loaders (checkpoints, IDX data), with an error that names
// the reader and the path.
import { readFileSync } from 'node:fs';

/** The bytes of `path`; a failure throws "<who> <path>: cannot read file: <reason>". */
export function readFileNamed(who: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${who} ${path}: cannot read file: ${(e as Error).message}`);
  }
}
