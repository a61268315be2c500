// The daemon's version: package.json's, the one source (the .deb's version is it plus a revision).
import pkg from "../../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
