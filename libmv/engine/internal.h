/*
 * internal.h - what the engine's files (libmv/engine/) share and nothing
 * outside them calls: key builders, JSON makers, constructors.  The
 * public API, with the structures and the locking contract, is engine.h.
 */
#ifndef MV_ENGINE_INTERNAL_H
#define MV_ENGINE_INTERNAL_H

#include "engine.h"

#endif
