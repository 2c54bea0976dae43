// Fitting the routers of an MoE from each expert's data, in the MoE itself: the plan about to be
// written runs over the data (data file c = class c) once, layer by layer, and at every MoE layer
// the router is fitted from the inputs it sees there — with the routers of the earlier layers
// already fitted, so it sees what it will see at inference — and written into the plan before
// the layer runs. The same observer measures routing accuracy: per MoE layer, the fraction of
// each class's tokens whose top-1 expert stands for that class.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/calibration_stats.hpp"
#include "formats/plan.hpp"
#include "merge/router_fit.hpp"
#include "merge/router_init.hpp"

namespace moeforge {

// One MoE layer's router in a plan: the values its tensor produces, [experts × hidden] row-major.
struct RouterSlot {
  int layer = 0;
  std::shared_ptr<std::vector<double>> rows;
};

struct LayerAccuracy {
  int layer = 0;
  std::vector<double> correct, tokens;  // per class
  // By position in the window, in buckets 0, 1, 2–3, 4–7, 8–15 ...: routers see more context later.
  std::vector<double> correct_by_position, tokens_by_position;
  double accuracy() const;              // over all classes' tokens
};

struct RouterFitRequest {
  RouterMethod method = RouterMethod::kRidge;  // kRidge or kLogistic
  FitOptions options;
  std::vector<int> class_of_expert;  // which class (data file) each expert stands for
  int threads = 0;
};

// Fits every slot's router layer by layer while the plan's MoE runs over `data`; returns the
// routing accuracy of the fitted routers on the data.
std::vector<LayerAccuracy> fit_routers(const Plan& plan, const std::string& label, const std::vector<RouterSlot>& slots,
                                       const DataSet& data, const RouterFitRequest& request, std::vector<std::string>* warnings);

// Routing accuracy of a model as it is (no fitting).
std::vector<LayerAccuracy> routing_accuracy(const Engine& engine, const DataSet& data, const std::vector<int>& class_of_expert);

// Ridge statistics of one layer from statistics files (observe --router-gram): every data file of
// stats[i] belongs to class class_of_stats[i].
RidgeStats ridge_stats_from(const std::vector<CalibrationStats>& stats, const std::vector<int>& class_of_stats, int classes, int layer);

std::vector<std::string> data_paths(const std::vector<DataFile>& files);

// The identity class map (expert e stands for class e).
std::vector<int> one_class_per_expert(int experts);

// The --report of compose and fit-router: the router kind and its settings, the data files (one per
// class) and per MoE layer the top-1 routing accuracy, overall and per class, of the new routers
// ("after") and, when measured, of the input model's ("before").
nlohmann::ordered_json router_report_json(const std::string& verb, RouterMethod method, const FitOptions& options,
                                          const std::vector<std::string>& data_files, const std::vector<LayerAccuracy>& after,
                                          const std::vector<LayerAccuracy>& before);

}  // namespace moeforge
