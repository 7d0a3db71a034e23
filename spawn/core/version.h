/*
 * version.h: this build's version, as tfb-spawn --version, tfb-fcgi
 * --version, the status page and tfb_build_info say it.
 *
 * The Makefile writes it into $(B)/version.c from deploy/version: `git
 * describe --tags --dirty` of the checkout (v0.1.0 -> "0.1.0", three
 * commits later "0.1.0-3-gabc1234", "-dirty" with uncommitted changes),
 * the VERSION file's number and the commit when no tag is there yet
 * ("0.1.0-gabc1234"), or VERSION alone in a tree without git.
 */
#ifndef VERSION_H
#define VERSION_H

extern const char tfb_version[];

#endif
