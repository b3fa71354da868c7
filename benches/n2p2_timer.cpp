// Times the phases of an n2p2 (libnnp) prediction; the peer side of benches/nnp.py.
//
// n2p2 is GPL and is not part of mlpot: this file only links against a build of it kept
// outside the repository. Build n2p2 v2.3.0 (libnnp alone; its makefile.gnu default flags
// are -O3 -march=native -std=c++11 without OpenMP), then this program:
//
//   N2P2=/work/peers/n2p2        # an n2p2 v2.3.0 source tree, after `cd src && make libnnp`
//   g++ -O3 -march=native -std=c++11 -I$N2P2/include -o /work/peers/n2p2_timer
//       benches/n2p2_timer.cpp -L$N2P2/lib -lnnp        (one line)
//
// (add -fopenmp to both builds for n2p2's OpenMP loops; OMP_NUM_THREADS then sets them).
//
// Usage: n2p2_timer MODEL_DIR INPUT_DATA [REPEATS [WARMUP]] [--forces]
//   MODEL_DIR holds input.nn, scaling.data and weights.%03d.data (as nnp-predict wants);
//   INPUT_DATA is one structure in n2p2's input.data format, in the model's units.
// Each repetition runs the steps of Prediction::predict() in order, each one timed:
//   neighbor_list  Structure::calculateNeighborList(maximum cutoff)
//   symmetry_functions  Mode::calculateSymmetryFunctionGroups(s, derivatives=true)
//   networks       Mode::calculateAtomicNeuralNetworks(s, derivatives=true) + calculateEnergy
//   forces         Mode::calculateForces
// Before each repetition the neighbor list is cleared (untimed), which frees the symmetry
// function memory as well, so every repetition allocates it again, as a new MD step would.
// Prints one JSON object: the median and minimum seconds per call of each phase, the
// energy with and without the atomic offset energies (model units), and force summaries;
// --forces adds every atom's force.
#include "Prediction.h"
#include "Structure.h"
#include "version.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace nnp;
typedef std::chrono::steady_clock Clock;

static double seconds(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double>(b - a).count();
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char* argv[])
{
    std::vector<std::string> args;
    bool printForces = false;
    for (int i = 1; i < argc; ++i)
    {
        if (std::strcmp(argv[i], "--forces") == 0) printForces = true;
        else args.push_back(argv[i]);
    }
    if (args.size() < 2)
    {
        std::fprintf(stderr, "usage: %s MODEL_DIR INPUT_DATA [REPEATS [WARMUP]] "
                             "[--forces]\n", argv[0]);
        return 1;
    }
    std::string dir = args[0];
    int repeats = args.size() > 2 ? std::atoi(args[2].c_str()) : 10;
    int warmup = args.size() > 3 ? std::atoi(args[3].c_str()) : 1;

    Prediction p;
    p.log.writeToStdout = false;  // stdout carries the JSON alone
    p.fileNameSettings = dir + "/input.nn";
    p.fileNameScaling = dir + "/scaling.data";
    p.formatWeightsFilesShort = dir + "/weights.%03zu.data";
    p.formatWeightsFilesCharge = dir + "/weightse.%03zu.data";
    p.setup();
    p.readStructureFromFile(args[1]);  // also removes the reference energy offset
    Structure& s = p.structure;
    double cutoff = p.getMaxCutoffRadius();

    const char* names[4] = {"neighbor_list", "symmetry_functions", "networks", "forces"};
    std::vector<double> t[4];
    for (int r = 0; r < warmup + repeats; ++r)
    {
        s.clearNeighborList();
        for (size_t i = 0; i < s.atoms.size(); ++i)
            std::fill(s.atoms[i].numNeighborsPerElement.begin(),
                      s.atoms[i].numNeighborsPerElement.end(), 0);
        Clock::time_point t0 = Clock::now();
        s.calculateNeighborList(cutoff);
        Clock::time_point t1 = Clock::now();
        p.calculateSymmetryFunctionGroups(s, true);
        Clock::time_point t2 = Clock::now();
        p.calculateAtomicNeuralNetworks(s, true);
        p.calculateEnergy(s);
        Clock::time_point t3 = Clock::now();
        p.calculateForces(s);
        Clock::time_point t4 = Clock::now();
        if (r < warmup) continue;
        t[0].push_back(seconds(t0, t1));
        t[1].push_back(seconds(t1, t2));
        t[2].push_back(seconds(t2, t3));
        t[3].push_back(seconds(t3, t4));
    }

    double energyNN = s.energy;  // no normalization in these models: physical units
    double offset = p.getEnergyOffset(s);
    double maxF = 0.0, sumSq = 0.0, sum[3] = {0.0, 0.0, 0.0};
    size_t numNeighbors = 0;
    for (size_t i = 0; i < s.atoms.size(); ++i)
    {
        Atom const& a = s.atoms[i];
        double f2 = a.f.norm2();
        maxF = std::max(maxF, std::sqrt(f2));
        sumSq += f2;
        for (int k = 0; k < 3; ++k) sum[k] += a.f[k];
        numNeighbors += a.numNeighbors;
    }

    std::printf("{\"n2p2_version\": \"%s\", \"normalized\": %s, \"atoms\": %zu, "
                "\"cutoff\": %.10g, \"mean_neighbors\": %.4f, \"repeats\": %d, "
                "\"warmup\": %d,\n", N2P2_VERSION, p.useNormalization() ? "true" : "false",
                s.atoms.size(), cutoff, double(numNeighbors) / s.atoms.size(), repeats,
                warmup);
    std::printf(" \"extrapolation_warnings\": %zu,\n", p.getNumExtrapolationWarnings());
    std::printf(" \"median_s\": {");
    for (int k = 0; k < 4; ++k)
        std::printf("%s\"%s\": %.9e", k ? ", " : "", names[k], median(t[k]));
    std::printf("},\n \"min_s\": {");
    for (int k = 0; k < 4; ++k)
        std::printf("%s\"%s\": %.9e", k ? ", " : "", names[k],
                    *std::min_element(t[k].begin(), t[k].end()));
    std::printf("},\n \"energy\": %.17g, \"energy_nn\": %.17g, \"energy_offset\": %.17g,\n",
                energyNN + offset, energyNN, offset);
    std::printf(" \"force_max\": %.17g, \"force_rms\": %.17g, "
                "\"force_sum\": [%.6e, %.6e, %.6e]",
                maxF, std::sqrt(sumSq / (3.0 * s.atoms.size())), sum[0], sum[1], sum[2]);
    if (printForces)
    {
        std::printf(",\n \"forces\": [");
        for (size_t i = 0; i < s.atoms.size(); ++i)
            std::printf("%s[%.17g, %.17g, %.17g]", i ? ", " : "", s.atoms[i].f[0],
                        s.atoms[i].f[1], s.atoms[i].f[2]);
        std::printf("]");
    }
    std::printf("}\n");
    return 0;
}
