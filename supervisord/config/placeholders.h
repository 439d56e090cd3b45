// The placeholders of a worker's command (and of its probes' targets and commands):
// {instance} is the instance's index, {name} the worker's name, {fd:NAME} the fd the
// worker maps socket NAME to. Any other brace text is left alone: it is the program's.
#pragma once

#include <string>

#include "config/model.h"

namespace fdsup::config {

// Replaces {fd:NAME}, {instance} and {name} in one argument.
std::string expand_placeholders(const std::string& arg, const WorkerConfig& worker, int instance);

// The same knowing only the worker's name (a log path, made for each configured instance
// at start and at each reload, and for captures that outlive their worker's config):
// {fd:NAME} becomes -1, as for a worker that maps no socket.
std::string expand_placeholders(const std::string& arg, const std::string& name, int instance);

}  // namespace fdsup::config
