// Types for stderr_filter.mjs (plain JavaScript so that the launcher needs no build).
export declare const DAWN_INFO_LINE: RegExp;
export declare function dawnLogsWanted(env?: Record<string, string | undefined>): boolean;
export interface LineFilter {
  write(chunk: string): string;
  end(): string;
}
export declare function createLineFilter(drop?: RegExp): LineFilter;
export declare function runFiltered(command: string, args: string[], opts?: { env?: Record<string, string | undefined> }): Promise<number>;
