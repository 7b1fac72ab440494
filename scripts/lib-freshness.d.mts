/** Whether dist lacks a complete build newer than every source and config file. */
export function libBuildIsStale(): boolean;
