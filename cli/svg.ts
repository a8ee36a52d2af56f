// The SVG chart helpers live in bench/svg.ts (bench reports use them; bench never imports
// cli/). Re-exported here for the cli commands' reports.
export * from '../bench/svg.ts';
